"""Deployment files of genai-exporter; a package only so `python -m deploy.kubernetes.generate` runs."""
