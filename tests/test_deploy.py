"""The deployment files: docker-compose stack, its configs, the exporter image, the Kubernetes manifests.

The files are checked with the real tools where this machine has them (Debian's docker-compose v1,
promtool, amtool; kubectl's built-in kustomize) and against each other where a mismatch would only
show once the stack runs: ports, service names, mount targets, job names, image tags.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.kubernetes import generate
from genai_exporter.config import load_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "exporter" / "Dockerfile"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
COLLECTOR_CONFIG = ROOT / "deploy" / "otel-collector" / "config.yaml"
TEMPO_CONFIG = ROOT / "deploy" / "tempo" / "tempo.yaml"
LOKI_CONFIG = ROOT / "deploy" / "loki" / "loki.yaml"
EXPORTER_CONFIG = ROOT / "deploy" / "genai-exporter" / "config.yaml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
BRIDGE_COMPONENT = KUBERNETES_DIR / "components" / "otlp-grpc-bridge"

EXPORTER_SERVICE = "genai-exporter"
EXPORTER_JOB = "genai-exporter"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _compose() -> dict[str, Any]:
    return _yaml(COMPOSE_FILE)


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _flag(args: list[str], flag: str) -> str:
    """The value of `--flag value` or `--flag=value` in an argument list."""
    for index, arg in enumerate(args):
        if arg == flag:
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {args}")


def _port(address: str) -> int:
    """The port of `host:port`, `:port` or `scheme://host:port/path`."""
    return int(re.sub(r"^[a-z]+://", "", address).split("/")[0].rsplit(":", 1)[1])


def _bind_mounts() -> list[tuple[str, str, str, str]]:
    """(service, host path relative to the repo, container path, mode) of every bind mount."""
    mounts = []
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            if source.startswith("./"):
                mounts.append((name, source[2:], target, mode[0] if mode else "rw"))
    return mounts


def _require_in_tree(relative: str) -> Path:
    """The repository path; a missing one fails the test that needs it."""
    path = ROOT / relative
    if not path.exists():
        pytest.fail(f"{relative} is missing")
    return path


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, **kwargs)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: scripts/test.sh installs it (Debian packages)")
    return path


# --- docker-compose.yml ----------------------------------------------------------------------------


def _compose_env(tmp_path: Path, password: str) -> Path:
    env_file = tmp_path / "compose.env"
    env_file.write_text(f"GRAFANA_ADMIN_PASSWORD={password}\n", encoding="utf-8")
    return env_file


def test_docker_compose_accepts_the_stack(tmp_path: Path) -> None:
    docker_compose = _tool("docker-compose")
    env_file = _compose_env(tmp_path, "correct-horse-battery-staple")
    result = _run([docker_compose, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
                  cwd=ROOT, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_to_start_without_a_grafana_password(tmp_path: Path) -> None:
    docker_compose = _tool("docker-compose")
    env_file = _compose_env(tmp_path, "")
    result = _run([docker_compose, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
                  cwd=ROOT, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_grafana_has_anonymous_access_off_and_no_default_password() -> None:
    environment = _services()["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert environment["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_env_example_starts_the_demo_profile_and_leaves_the_password_to_fill_in() -> None:
    settings = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert settings == {"GRAFANA_ADMIN_PASSWORD": "", "COMPOSE_PROFILES": "demo"}


def test_only_the_demo_workload_sits_behind_a_profile() -> None:
    profiles = {name: service.get("profiles") for name, service in _services().items()}
    assert profiles.pop("demo-agent") == ["demo"]
    assert set(profiles.values()) == {None}


def test_demo_workload_sends_to_the_collectors_otlp_http_receiver() -> None:
    command = _services()["demo-agent"]["command"]
    receiver = _yaml(COLLECTOR_CONFIG)["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert command[0] == "demo"
    assert _flag(command, "--otlp-endpoint") == f"http://otel-collector:{_port(receiver)}"


@pytest.mark.parametrize("service", sorted(_services()))
def test_every_image_has_a_pinned_tag(service: str) -> None:
    image = _services()[service]["image"]
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"{service}: {image} has no tag"
    assert tag != "latest"
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{service}: {image} is not pinned to a release"


def test_exporter_image_tag_is_the_package_version() -> None:
    for service in (EXPORTER_SERVICE, "demo-agent"):
        assert _services()[service]["image"] == f"genai-exporter:{_project_version()}"


@pytest.mark.parametrize("service", sorted(name for name, s in _services().items() if "ports" in s))
def test_every_published_port_binds_loopback(service: str) -> None:
    for mapping in _services()[service]["ports"]:
        assert mapping.startswith("127.0.0.1:"), f"{service}: {mapping} is reachable from other machines"


@pytest.mark.parametrize(("service", "source", "target", "mode"), _bind_mounts(),
                         ids=[f"{m[0]}:{m[1]}" for m in _bind_mounts()])
def test_every_config_mount_is_a_read_only_repository_path(service: str, source: str, target: str,
                                                            mode: str) -> None:
    assert mode == "ro", f"{service} mounts {source} writable"
    _require_in_tree(source)


def test_named_volumes_hold_only_data_and_are_declared() -> None:
    declared = set(_compose()["volumes"])
    used = {volume.split(":")[0] for service in _services().values()
            for volume in service.get("volumes", []) if not volume.startswith("./")}
    assert used == declared


@pytest.mark.parametrize("service", [EXPORTER_SERVICE, "demo-agent"])
def test_exporter_image_services_run_unprivileged_on_a_read_only_filesystem(service: str) -> None:
    definition = _services()[service]
    assert definition["user"] == "10001:10001"
    assert definition["read_only"] is True
    assert definition["tmpfs"] == ["/tmp"]
    assert definition["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in definition["security_opt"]


def test_exporter_healthcheck_probes_the_port_it_listens_on() -> None:
    exporter = _services()[EXPORTER_SERVICE]
    listen_port = _port(_flag(exporter["command"], "--web.listen-address"))
    probe = exporter["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "python", "-c"]
    assert f"http://127.0.0.1:{listen_port}/-/healthy" in probe[3]


def test_exporter_reads_the_mounted_config_and_the_config_loads() -> None:
    exporter = _services()[EXPORTER_SERVICE]
    config_path = _flag(exporter["command"], "--config.file")
    mounted = {target: source for service, source, target, _ in _bind_mounts() if service == EXPORTER_SERVICE}
    assert mounted[config_path] == "deploy/genai-exporter/config.yaml"
    config = load_config(EXPORTER_CONFIG)
    assert [dimension.label for dimension in config.dimensions] == ["user_tier", "feature"]


# --- exporter/Dockerfile and .dockerignore ----------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_base_images_are_pinned() -> None:
    bases = [rest.split()[0] for keyword, rest in _dockerfile_instructions() if keyword == "FROM"]
    assert bases and all(re.fullmatch(r"python:\d+\.\d+-slim-\w+", base) for base in bases), bases


def test_dockerfile_runs_the_console_script_as_a_numeric_non_root_user() -> None:
    instructions = _dockerfile_instructions()
    user = [rest for keyword, rest in instructions if keyword == "USER"][-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = [rest for keyword, rest in instructions if keyword == "ENTRYPOINT"][-1]
    assert yaml.safe_load(entrypoint) == ["genai-exporter"]
    assert "genai-exporter" in scripts


def _dockerignore_excludes(path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent directory wins."""
    excluded = False
    parts = path.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def test_dockerignore_keeps_secrets_and_caches_out_of_the_build_context() -> None:
    for path in (".env", ".venv/bin/python", "exporter/genai_exporter/__pycache__/catalog.cpython-312.pyc",
                 "exporter/genai_exporter.egg-info/PKG-INFO", "dashboards/generated/overview.json",
                 "exporter/genai_exporter/normalize.cpython-311-x86_64-linux-gnu.so",
                 "exporter/genai_exporter/_extensions.json"):
        assert _dockerignore_excludes(path), path


@pytest.mark.parametrize("source", ["pyproject.toml", "setup.py", "README.md", "exporter/genai_exporter/config.py"])
def test_every_file_the_image_build_copies_is_in_the_build_context(source: str) -> None:
    copied = [rest.split()[:-1] for keyword, rest in _dockerfile_instructions()
              if keyword == "COPY" and "--from" not in rest]
    assert any(source == item or source.startswith(item + "/") for items in copied for item in items)
    assert not _dockerignore_excludes(source)
    _require_in_tree(source)


# --- Prometheus, Alertmanager ----------------------------------------------------------------------


def _mirror_mounts(service: str, config_dir: str, tmp_path: Path) -> Path:
    """Lay out tmp_path like the container's config_dir, with symlinks to the mounted repository paths."""
    for name, source, target, _ in _bind_mounts():
        if name == service and target.startswith(config_dir + "/"):
            link = tmp_path / target.removeprefix(config_dir + "/")
            link.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / source).exists():
                link.symlink_to(ROOT / source)
    return tmp_path


def test_promtool_accepts_the_prometheus_config(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    layout = _mirror_mounts("prometheus", "/etc/prometheus", tmp_path)
    result = _run([promtool, "check", "config", str(layout / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_loads_every_rule_file_mounted_from_alerts(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    rule_files = sorted(_require_in_tree("alerts").glob(generate.RULES_GLOB))
    assert rule_files, f"alerts/ has no {generate.RULES_GLOB}"
    layout = _mirror_mounts("prometheus", "/etc/prometheus", tmp_path)
    result = _run([promtool, "check", "config", str(layout / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_files)} rule files found" in result.stdout


def test_prometheus_rule_files_are_the_ones_kubernetes_gets() -> None:
    assert _yaml(PROMETHEUS_CONFIG)["rule_files"] == [f"rules/{generate.RULES_GLOB}"]
    mounts = {target: source for service, source, target, _ in _bind_mounts() if service == "prometheus"}
    assert mounts["/etc/prometheus/rules"] == str(generate.RULES_DIR)


def test_prometheus_scrapes_the_exporter_as_the_job_the_rules_select() -> None:
    config = _yaml(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    listen_port = _port(_flag(_services()[EXPORTER_SERVICE]["command"], "--web.listen-address"))
    assert jobs[EXPORTER_JOB]["static_configs"] == [{"targets": [f"{EXPORTER_SERVICE}:{listen_port}"]}]
    assert jobs[EXPORTER_JOB].get("scrape_interval", config["global"]["scrape_interval"]) == "15s"


def test_prometheus_asks_for_openmetrics_first_so_exemplars_arrive() -> None:
    # No scrape_protocols: the default of v2 and v3 puts OpenMetrics first, and promtool 2.42 (CI)
    # predates the key. If someone sets it, OpenMetrics must stay first.
    for job in _yaml(PROMETHEUS_CONFIG)["scrape_configs"]:
        protocols = job.get("scrape_protocols", ["OpenMetricsText1.0.0"])
        assert protocols[0] == "OpenMetricsText1.0.0", job["job_name"]
    assert "--enable-feature=exemplar-storage" in _services()["prometheus"]["command"]


def test_prometheus_alerts_go_to_the_alertmanager_service() -> None:
    alerting = _yaml(PROMETHEUS_CONFIG)["alerting"]["alertmanagers"]
    alertmanager_url = _flag(_services()["alertmanager"]["command"], "--web.external-url")
    assert alerting == [{"static_configs": [{"targets": [f"alertmanager:{_port(alertmanager_url)}"]}]}]


def test_prometheus_scrapes_the_collectors_own_metrics_where_it_serves_them() -> None:
    reader = _yaml(COLLECTOR_CONFIG)["service"]["telemetry"]["metrics"]["readers"][0]
    prometheus_exporter = reader["pull"]["exporter"]["prometheus"]
    jobs = {job["job_name"]: job for job in _yaml(PROMETHEUS_CONFIG)["scrape_configs"]}
    assert prometheus_exporter["host"] == "0.0.0.0"
    assert jobs["otel-collector"]["static_configs"] == [
        {"targets": [f"otel-collector:{prometheus_exporter['port']}"]}]


def test_amtool_accepts_the_alertmanager_config() -> None:
    amtool = _tool("amtool")
    _require_in_tree("deploy/alertmanager")
    command = _services()["alertmanager"]["command"]
    assert _flag(command, "--config.file") == "/etc/alertmanager/alertmanager.yml"
    result = _run([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr


# --- OpenTelemetry Collector, Tempo, Loki ------------------------------------------------------------


def test_collector_pipelines_use_exactly_the_components_defined() -> None:
    config = _yaml(COLLECTOR_CONFIG)
    service = config["service"]
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    for pipeline in service["pipelines"].values():
        for kind in used:
            used[kind].update(pipeline.get(kind, []))
    for kind, names in used.items():
        assert names == set(config[kind]), kind
    assert set(service["extensions"]) == set(config["extensions"])
    for pipeline in service["pipelines"].values():
        assert pipeline["processors"][0] == "memory_limiter"


def test_collector_sends_traces_to_tempo_and_the_exporter_and_logs_to_loki() -> None:
    config = _yaml(COLLECTOR_CONFIG)
    exporters = config["exporters"]
    pipelines = config["service"]["pipelines"]
    tempo_receiver = _yaml(TEMPO_CONFIG)["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    exporter_otlp = _flag(_services()[EXPORTER_SERVICE]["command"], "--otlp.listen-address")
    loki_port = _yaml(LOKI_CONFIG)["server"]["http_listen_port"]
    assert pipelines["traces"]["exporters"] == ["otlp/tempo", "otlphttp/genai-exporter"]
    assert pipelines["logs"]["exporters"] == ["otlphttp/loki"]
    assert exporters["otlp/tempo"]["endpoint"] == f"tempo:{_port(tempo_receiver)}"
    assert exporters["otlphttp/genai-exporter"]["endpoint"] == f"http://{EXPORTER_SERVICE}:{_port(exporter_otlp)}"
    assert exporters["otlphttp/loki"]["endpoint"] == f"http://loki:{loki_port}/otlp"


def test_collector_receivers_listen_where_compose_publishes_them() -> None:
    protocols = _yaml(COLLECTOR_CONFIG)["receivers"]["otlp"]["protocols"]
    published = {_port(mapping.rsplit(":", 1)[0]): _port(mapping)
                 for mapping in _services()["otel-collector"]["ports"]}
    for protocol in protocols.values():
        host, port = protocol["endpoint"].rsplit(":", 1)
        # localhost inside the container would be unreachable through the port mapping.
        assert host == "0.0.0.0"
        assert int(port) in published.values()


def test_tempo_and_loki_listen_where_grafana_looks_for_them() -> None:
    assert _yaml(TEMPO_CONFIG)["server"]["http_listen_port"] == 3200
    assert _yaml(LOKI_CONFIG)["server"]["http_listen_port"] == 3100
    datasource_dir = _require_in_tree("deploy/grafana/provisioning/datasources")
    urls = {source["url"] for path in sorted(datasource_dir.glob("*.y*ml"))
            for source in (_yaml(path) or {}).get("datasources", [])}
    assert {"http://tempo:3200", "http://loki:3100", "http://prometheus:9090"} <= urls


@pytest.mark.parametrize("path", [COLLECTOR_CONFIG, PROMETHEUS_CONFIG, TEMPO_CONFIG, LOKI_CONFIG,
                                  EXPORTER_CONFIG, *sorted(KUBERNETES_DIR.rglob("*.yaml"))],
                         ids=lambda path: str(path.relative_to(ROOT)))
def test_every_config_file_says_which_service_reads_it(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith("# Read by ")


# --- Kubernetes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("generator", generate.GENERATORS, ids=lambda generator: generator.__name__)
def test_generated_kubernetes_manifests_are_fresh(generator: Any) -> None:
    output = generator(ROOT)
    on_disk = ROOT / output.path
    assert on_disk.is_file() and on_disk.read_text(encoding="utf-8") == output.text, (
        f"{output.path} is stale: run python -m deploy.kubernetes.generate")


RULES_A = """\
groups:
  - name: genai-cost
    rules:
      - alert: GenAIDailyBudgetExceeded
        expr: |
          sum by (user_tier) (increase(genai_cost_usd_total{job="genai-exporter"}[1d]))
            > on (user_tier) genai_budget_cost_usd_per_day
        for: 15m
        labels: {severity: warning}
        annotations:
          summary: "{{ $labels.user_tier }} spent over its daily budget"
"""
RULES_B = """\
groups:
  - name: genai-reliability
    rules:
      - record: service:genai_errors:rate5m
        expr: sum by (service) (rate(genai_operation_errors_total{job="genai-exporter"}[5m]))
"""
DASHBOARD_COST = '{\n  "title": "GenAI cost",\n  "uid": "genai-cost"\n}\n'
DASHBOARD_AGENTS = '{"title": "GenAI agent runs", "uid": "genai-agent-runs"}'


def _fake_repository(root: Path) -> Path:
    """A repository with two rule files, two dashboards and the real exporter config and manifests."""
    (root / "alerts").mkdir()
    (root / "alerts" / "reliability.rules.yml").write_text(RULES_B)
    (root / "alerts" / "cost.rules.yml").write_text(RULES_A)
    (root / "alerts" / "cost.test.yml").write_text("rule_files: [cost.rules.yml]\n")
    (root / "dashboards" / "generated").mkdir(parents=True)
    (root / "dashboards" / "generated" / "cost.json").write_text(DASHBOARD_COST)
    (root / "dashboards" / "generated" / "Agent_Runs.json").write_text(DASHBOARD_AGENTS)
    shutil.copytree(ROOT / "deploy", root / "deploy", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_prometheus_rule_holds_every_group_of_every_rule_file_in_file_order(tmp_path: Path) -> None:
    output = generate.prometheus_rule(_fake_repository(tmp_path))
    manifest = yaml.safe_load(output.text)
    assert output.sources == (Path("alerts/cost.rules.yml"), Path("alerts/reliability.rules.yml"))
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert manifest["spec"]["groups"] == yaml.safe_load(RULES_A)["groups"] + yaml.safe_load(RULES_B)["groups"]


def test_dashboards_become_one_sidecar_configmap_each_with_the_json_unchanged(tmp_path: Path) -> None:
    output = generate.grafana_dashboards(_fake_repository(tmp_path))
    configmaps = list(yaml.safe_load_all(output.text))
    assert [(c["metadata"]["name"], c["data"]) for c in configmaps] == [
        ("genai-exporter-dashboard-agent-runs", {"Agent_Runs.json": DASHBOARD_AGENTS}),
        ("genai-exporter-dashboard-cost", {"cost.json": DASHBOARD_COST}),
    ]
    assert all(c["metadata"]["labels"]["grafana_dashboard"] == "1" for c in configmaps)


def test_generator_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    root = _fake_repository(tmp_path)
    first, _ = generate.generate(root)
    second, _ = generate.generate(root)
    assert [o.text for o in first] == [o.text for o in second]


def test_generator_check_names_the_file_a_changed_rule_makes_stale(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = _fake_repository(tmp_path)
    assert generate.main(["--root", str(root)]) == 0
    assert generate.main(["--root", str(root), "--check"]) == 0
    (root / "alerts" / "cost.rules.yml").write_text(RULES_A.replace("for: 15m", "for: 30m"))
    capsys.readouterr()
    assert generate.main(["--root", str(root), "--check"]) == 1
    assert capsys.readouterr().err == (
        "stale: deploy/kubernetes/prometheusrule.yaml (run python -m deploy.kubernetes.generate)\n")


def test_generator_reports_missing_inputs_and_still_writes_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "deploy" / "genai-exporter").mkdir(parents=True)
    (tmp_path / "deploy" / "kubernetes").mkdir()
    (tmp_path / "deploy" / "genai-exporter" / "config.yaml").write_text("dimensions: []\n")
    assert generate.main(["--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "missing input: no alerts/*.rules.yml (the alert rules)" in err
    assert "missing input: no dashboards/generated/*.json (the generated dashboards)" in err
    written = (tmp_path / "deploy" / "kubernetes" / "exporter-config.yaml").read_text()
    assert written.endswith("\ndimensions: []\n")


def _kustomize_command() -> list[str]:
    """kustomize, or kubectl's built-in copy when it is new enough for components (kubectl 1.24+)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl") is None:
        pytest.skip("neither kustomize nor kubectl is installed")
    version = _run(["kubectl", "version", "--client", "-o", "json"])
    if '"kustomizeVersion": "v' not in version.stdout:
        pytest.skip("this kubectl embeds no kustomize that knows components (needs kubectl 1.24+)")
    return ["kubectl", "kustomize"]


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    result = _run([*_kustomize_command(), str(directory)])
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def _by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in documents if document["kind"] == kind]


def test_kustomize_builds_the_base_for_kube_prometheus_stack(tmp_path: Path) -> None:
    root = _fake_repository(tmp_path)
    generate.main(["--root", str(root)])
    documents = _kustomize(root / "deploy" / "kubernetes")
    assert sorted(d["kind"] for d in documents) == [
        "ConfigMap", "ConfigMap", "ConfigMap", "Deployment", "PrometheusRule", "Service", "ServiceMonitor"]
    assert {d["metadata"]["namespace"] for d in documents} == {"monitoring"}
    config_map = next(d for d in _by_kind(documents, "ConfigMap") if "config.yaml" in d["data"])
    packed = tmp_path / "config-from-configmap.yaml"
    packed.write_text(config_map["data"]["config.yaml"])
    assert load_config(packed) == load_config(EXPORTER_CONFIG)
    pod = _by_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == config_map["metadata"]["name"]


def test_kubernetes_exporter_runs_like_the_compose_one(tmp_path: Path) -> None:
    root = _fake_repository(tmp_path)
    generate.main(["--root", str(root)])
    pod = _by_kind(_kustomize(root / "deploy" / "kubernetes"), "Deployment")[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == f"genai-exporter:{_project_version()}"
    assert container["args"] == _services()[EXPORTER_SERVICE]["command"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {port["containerPort"] for port in container["ports"]} == {
        _port(_flag(container["args"], "--web.listen-address")),
        _port(_flag(container["args"], "--otlp.listen-address"))}


def test_service_monitor_scrapes_the_service_under_the_job_the_rules_select(tmp_path: Path) -> None:
    root = _fake_repository(tmp_path)
    generate.main(["--root", str(root)])
    documents = _kustomize(root / "deploy" / "kubernetes")
    monitor = _by_kind(documents, "ServiceMonitor")[0]["spec"]
    service = _by_kind(documents, "Service")[0]
    labels = service["metadata"]["labels"]
    assert monitor["selector"]["matchLabels"].items() <= labels.items()
    assert labels[monitor["jobLabel"]] == EXPORTER_JOB
    assert monitor["endpoints"][0]["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert service["spec"]["clusterIP"] == "None"


def test_bridge_component_adds_an_otlp_grpc_port_in_front_of_the_exporter(tmp_path: Path) -> None:
    root = _fake_repository(tmp_path)
    generate.main(["--root", str(root)])
    overlay = root / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../deploy/kubernetes"],
        "components": ["../deploy/kubernetes/components/otlp-grpc-bridge"],
    }))
    documents = _kustomize(overlay)
    containers = _by_kind(documents, "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    bridge = next(c for c in containers if c["name"] == "otlp-grpc-bridge")
    exporter = next(c for c in containers if c["name"] == "genai-exporter")
    bridge_config = _yaml(BRIDGE_COMPONENT / "bridge-config.yaml")
    assert re.fullmatch(r"otel/opentelemetry-collector:\d+\.\d+\.\d+", bridge["image"])
    assert bridge_config["exporters"]["otlphttp"]["endpoint"] == (
        f"http://127.0.0.1:{_port(_flag(exporter['args'], '--otlp.listen-address'))}")
    grpc_port = _port(bridge_config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])
    service = _by_kind(documents, "Service")[0]
    assert {"name": "otlp-grpc", "port": grpc_port, "targetPort": "otlp-grpc"} in service["spec"]["ports"]
