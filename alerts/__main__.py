"""`python -m alerts` regenerates alerts/genai.rules.yml, like `python -m alerts.rules`."""

from alerts.rules import main

main()
