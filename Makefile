# Convenience targets; the README's two commands are scripts/run.sh and scripts/test.sh.
PYTHON ?= .venv/bin/python

.PHONY: run test test-rules generate dashboards rules docs kubernetes

run:
	scripts/run.sh

test:
	scripts/test.sh

# Regenerate every checked-in generated file (CI fails when one is stale).
generate: rules dashboards docs kubernetes

rules:
	$(PYTHON) -m alerts.rules

# The rule file through promtool: syntax and lint, then the unit tests of alerts/tests/.
test-rules: rules
	promtool check rules alerts/genai.rules.yml
	promtool test rules alerts/tests/*.test.yml

dashboards:
	$(PYTHON) -m dashboards.build

docs:
	$(PYTHON) -m genai_exporter.docs

kubernetes: rules dashboards
	$(PYTHON) -m deploy.kubernetes.generate
