"""The demo agent workload: production-like GenAI traces, with fault scenarios to switch on.

`workload.DemoWorkload` generates agent runs with the real OpenTelemetry SDK; `scenarios` names the
faults and turns them on by hand (`ScenarioSwitch`) or on a schedule (`ScenarioSchedule`); `cli`
is `genai-exporter demo`, which sends the workload over OTLP/HTTP to any collector or exporter.
"""
