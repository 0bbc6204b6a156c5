"""Kubernetes manifests of genai-exporter and the generator of their derived parts."""
