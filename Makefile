# Convenience targets; the README's two commands are scripts/run.sh and scripts/test.sh.
PYTHON ?= .venv/bin/python

.PHONY: run test generate dashboards rules docs kubernetes

run:
	scripts/run.sh

test:
	scripts/test.sh

# Regenerate every checked-in generated file (CI fails when one is stale).
generate: rules dashboards docs kubernetes

rules:
	$(PYTHON) -m alerts.rules

dashboards:
	$(PYTHON) -m dashboards.build

docs:
	$(PYTHON) -m genai_exporter.docs

kubernetes: rules dashboards
	$(PYTHON) -m deploy.kubernetes.generate
